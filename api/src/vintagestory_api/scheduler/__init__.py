"""The job engine: APScheduler behind a typed service in which every run is recorded; the only
package that imports apscheduler."""
