"""Image I/O: reading and writing every image mode and format (`imaging`: 8-bit through Pillow,
EXIF orientation, ICC/EXIF carried over, JPEG quality estimates; `hibit`: 16-bit PNG and TIFF).
"""
