"""Build the 4000x3000 test photo used for the memory measurement in docs/memory.md:
four training photographs from ../shared/datasets/train/photos (CC0, see SOURCES.tsv),
each resized to 2000x1500, in a 2x2 mosaic, saved as a quality-95 JPEG."""

import sys
from pathlib import Path

from PIL import Image

src = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "train" / "photos"
out = Path(sys.argv[1] if len(sys.argv) > 1 else "big_4000x3000.jpg")
canvas = Image.new("RGB", (4000, 3000))
for i, name in enumerate(["photo_001.jpg", "photo_002.jpg", "photo_005.jpg", "photo_009.jpg"]):
    with Image.open(src / name) as im:
        canvas.paste(im.convert("RGB").resize((2000, 1500), Image.LANCZOS),
                     ((i % 2) * 2000, (i // 2) * 1500))
canvas.save(out, quality=95)
print(out)
