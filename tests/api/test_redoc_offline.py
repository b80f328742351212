"""The API reference asks no other host for anything."""


def test_redoc_page_and_bundle_name_no_other_host(client, db):
    page = client.get("/api/redoc/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "googleapis" not in html and "gstatic" not in html
    assert "worker-src 'self' blob:" in page["Content-Security-Policy"]
    bundle = client.get("/api/redoc/redoc.standalone.js")
    assert bundle.status_code == 200 and bundle["Content-Type"].startswith("text/javascript")
    body = bundle.content.decode()
    assert "Redoc" in body and "cdn.redoc.ly" not in body
