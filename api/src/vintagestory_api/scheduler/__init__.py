"""The job scheduler: when jobs run, how their runs are recorded and kept."""
