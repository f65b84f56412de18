"""docs/API.md and the OpenAPI document served by pyrunnerd agree."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_api_doc_matches_openapi():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "check_api_doc.py")],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "api doc ok" in p.stdout
