"""Frame sources: GStreamer (PyGObject + appsink) for cameras, OpenCV as a fallback."""
