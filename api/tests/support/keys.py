"""API keys the test settings use."""

ADMIN_KEY = "test-admin-key-0123456789"
MONITOR_KEY = "test-monitor-key-0123456789"
