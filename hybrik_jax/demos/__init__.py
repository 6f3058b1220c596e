"""The image and video demos' library: video files, tracking, smoothing, results files."""
