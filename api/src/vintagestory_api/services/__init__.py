"""Plain service classes; collaborators are passed to their constructors."""
