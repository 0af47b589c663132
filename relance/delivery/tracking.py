"""Open and click tracking (D-09): signed links in the HTML part, resolved by the API."""

from __future__ import annotations

import html
import re

from relance.core.tokens import Signer

_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
# 1×1 transparent GIF
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def track_html(body: str, delivery: str, signer: Signer, public_url: str) -> str:
    """Route every web link through a signed click URL and add an open pixel.

    The unsubscribe link stays direct: one-click unsubscribe must not depend on tracking.
    """
    base = public_url.rstrip("/")

    def rewrite(match: re.Match[str]) -> str:
        url = html.unescape(match[1])
        if url.startswith(f"{base}/u/"):
            return match[0]
        return f'href="{base}/t/c/{signer.tracking_token(delivery, url)}"'

    pixel = (
        f'<img src="{base}/t/o/{signer.tracking_token(delivery)}.gif" width="1" height="1" alt="" '
        'style="display:block;border:0">'
    )
    tracked = _HREF.sub(rewrite, body)
    if "</body>" in tracked:
        return tracked.replace("</body>", f"{pixel}</body>", 1)
    return tracked + pixel
