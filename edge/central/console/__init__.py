"""The collector's web console: pages, their log-in guard, the chart and /metrics."""
