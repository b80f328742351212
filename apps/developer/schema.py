"""Documents the personal token scheme in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.developer.auth.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A personal API token made on your developer settings page (`Authorization: Bearer ath_…`). "
                "Reading needs the `read` scope; changes need `rent` (marketplace), `stake` (staking), "
                "`vote` (governance) or `transfer` (wallet). Tokens are limited per token (API_TOKEN_RATE)."
            ),
        }
