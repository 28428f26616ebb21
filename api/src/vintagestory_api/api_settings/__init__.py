"""The API's own operator settings (`/config/api`), kept durably and applied live."""
