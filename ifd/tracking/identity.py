"""Who is deciding: the user the tracking server authenticated, when it runs MLflow's basic auth.

`mlflow server --app-name basic-auth` (`make mlflow AUTH=1`) checks the user name and password the
client sends (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`) on every request, and its
permissions decide who may tag versions and move aliases. ifd asks the server who the caller is
(`GET /api/2.0/mlflow/users/get` for that user, which only the user themself or an admin may read), so
the recorded reviewer is the identity the server accepted, not a free-text flag. A local store (SQLite)
or a server without the auth app has no identity: the reviewer is then the `--reviewer` name, and the
version's `reviewer_source` tag says so.
"""

from __future__ import annotations

import os

from ifd.errors import IfdError
from ifd.workspace import Workspace

AUTHENTICATED = "mlflow-auth"
FLAG = "flag"


class NotAuthenticated(IfdError):
    """The tracking server refused the credentials it was given."""

    exit_code = 6


def authenticated_user(ws: Workspace) -> str | None:
    """The user the tracking server authenticated, or None (no server, no credentials, or no auth app)."""
    from ifd.redact import redact_url
    from ifd.tracking.retry import with_retries
    from ifd.tracking.store import one_retry_layer, tracking_uri

    uri = tracking_uri(ws)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "").strip()
    if not uri.startswith(("http://", "https://")) or not user:
        return None
    one_retry_layer()
    from mlflow.server.auth.client import AuthServiceClient

    def ask() -> str | None:
        try:
            return str(AuthServiceClient(uri).get_user(user).username)
        except Exception as exc:
            text = str(exc)
            code = getattr(exc, "error_code", "")
            if "404" in text or code == "ENDPOINT_NOT_FOUND" or "not found" in text.lower() and "endpoint" in text.lower():
                return None  # a server without the auth app
            if "401" in text or code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "403" in text:
                raise NotAuthenticated(
                    f"the tracking server {redact_url(uri)} refused the credentials of MLFLOW_TRACKING_USERNAME={user!r}; "
                    "check MLFLOW_TRACKING_PASSWORD"
                ) from None
            raise

    return with_retries(ask, "ask the tracking server who you are")
