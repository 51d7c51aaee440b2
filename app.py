"""Route table and scheduled function of the backup controller. Handlers stay thin: parse, call
chalicelib, return data; errors become JSON in one place."""

from chalice import Chalice

from chalicelib import __version__

app = Chalice(app_name="backupctl")


@app.route("/api/v2/system/health", methods=["GET"])
def health() -> dict:
    """Liveness: answers without touching lainlet, the daemons or DynamoDB."""
    return {"status": "ok", "version": __version__}
