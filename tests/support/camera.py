"""A camera for the phone app in tests: Chromium's fake capture device, fed a Y4M video
made from a real QR image.

Chromium reads ``--use-file-for-fake-video-capture`` each time a page opens the camera,
so one browser serves a whole test session: the test writes the picture the phone should
see, then the app opens the camera (it stops the camera after every read). The file is
replaced atomically, so Chromium never reads half a frame.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

# 720p, the resolution the app asks for; the QR fills most of the frame's height, as a
# phone held over a screen sees it.
WIDTH, HEIGHT = 1280, 720
MARGIN = 60
# Chromium loops the file; two frames make it a video rather than a still.
FRAMES = 2


class FakeCamera:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.show_nothing()

    def browser_args(self) -> list[str]:
        return ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={self.path}"]

    def show(self, png: bytes) -> None:
        """Point the camera at this image (a QR PNG), centred on a white frame."""
        picture = Image.open(io.BytesIO(png)).convert("L")
        side = HEIGHT - 2 * MARGIN
        # Nearest neighbour keeps the modules sharp, as a screen in focus shows them.
        picture = picture.resize((side, side), Image.Resampling.NEAREST)
        frame = Image.new("L", (WIDTH, HEIGHT), 255)
        frame.paste(picture, ((WIDTH - side) // 2, MARGIN))
        self._write(frame.tobytes())

    def show_nothing(self) -> None:
        self._write(bytes([235]) * (WIDTH * HEIGHT))

    def _write(self, luma: bytes) -> None:
        # Grey: the luma plane is the picture, both chroma planes neutral (128).
        chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
        header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as video:
            video.write(header)
            for _ in range(FRAMES):
                video.write(b"FRAME\n" + luma + chroma + chroma)
        os.replace(temporary, self.path)
