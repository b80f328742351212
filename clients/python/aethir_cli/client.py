"""The HTTP API, over urllib: JSON in and out, the token in a header."""

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid


class ApiError(Exception):
    def __init__(self, status: int, body):
        self.status, self.body = status, body
        super().__init__(f"HTTP {status}: {describe(body)}")


def describe(body) -> str:
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])
        return "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in body.items())
    return str(body)


class Client:
    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def _request(self, method: str, path: str, *, params=None, body=None, raw: bool = False):
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if method != "GET":
            # Safe to retry by hand: the server answers a repeat with the first answer.
            request.add_header("Idempotency-Key", str(uuid.uuid4()))
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                detail = json.loads(text)
            except ValueError:
                detail = text[:500]
            raise ApiError(exc.code, detail) from None
        if raw:
            return response
        with response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def get(self, path, **params):
        return self._request("GET", path, params=params)

    def post(self, path, body=None):
        return self._request("POST", path, body=body or {})

    def stream(self, path, **params):
        return self._request("GET", path, params=params, raw=True)
