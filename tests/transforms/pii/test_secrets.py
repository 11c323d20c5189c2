"""SECRET and CREDENTIAL: documented key formats and random values of secret-like names are
replaced; hashes, hex ids, base64 images, placeholders and prose about passwords are not."""

from __future__ import annotations

import pytest

from corpusforge.transforms.pii.engine import PiiScrubber
from corpusforge.transforms.pii.secrets import looks_random, shannon_entropy


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    s = PiiScrubber()
    s.setup()
    return s


# values made up for these tests, in each service's documented shape
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAv3Jq9Zk2Qm8Xw4Rt7Yp1Lc6Vb0Ns5Hd2Fg8Kj3Lm9Pq4Rs7Tu\n"
    "x1Vw2Yz3Ab4Cd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv4Wx5Yz6Ab7Cd8Ef9Gh0Ij1Kl2M\n"
    "n3Op4Qr5St6Uv7Wx8Yz9Ab0Cd1Ef2Gh3Ij4Kl5Mn6Op7Qr8St9Uv0Wx1Yz2Ab3Cd4E\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "text, value",
    [
        ("aws_access_key_id = AKIAZ7QX4L2M5N6P3R7T", "AKIAZ7QX4L2M5N6P3R7T"),
        (
            "export GITHUB_TOKEN=ghp_4fQx9Lm2Zt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7Ku",
            "ghp_4fQx9Lm2Zt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7Ku",
        ),
        (
            "use github_pat_11AB2CD3E0k9Xq7Lm4Zt2V_b1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQ9 here",
            "github_pat_11AB2CD3E0k9Xq7Lm4Zt2V_b1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQ9",
        ),
        ("git remote uses glpat-x9Zq4Lm2Tt7Vb1Nc8Rk3W for CI", "glpat-x9Zq4Lm2Tt7Vb1Nc8Rk3W"),
        (
            "slack bot xoxb-2048193847-5120398471-Qm7Zx4Lp2Tt9Vb1Nc8Rk3Wd6 posts",
            "xoxb-2048193847-5120398471-Qm7Zx4Lp2Tt9Vb1Nc8Rk3Wd6",
        ),
        (
            "stripe.api_key = sk_live_51HqZx4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5",
            "sk_live_51HqZx4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5",
        ),
        (
            "maps key AIzaSyB3x9Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa in the page",
            "AIzaSyB3x9Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa",
        ),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.Qm7Zx4Lp2Tt9Vb1Nc8Rk3Wd6Yh0",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.Qm7Zx4Lp2Tt9Vb1Nc8Rk3Wd6Yh0",
        ),
        (f"key file:\n{PEM}\nend", PEM),
        ('DB_PASSWORD="k8#Vq2!zR7mL"', "k8#Vq2!zR7mL"),
        ("  'client_secret': 'Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0',", "Zq4Lm2Tt7Vb1Nc8Rk3Wd6Yh0"),
        (
            "aws_secret_access_key = wT9qZ4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQx",
            "wT9qZ4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQx",
        ),
    ],
)
def test_secrets_are_replaced(scrubber, text, value):
    out = scrubber.scrub(text)
    assert value not in out.text, out.spans
    assert out.text == text.replace(value, "<SECRET>"), out.text
    assert out.counts == {"SECRET": 1}


def test_aws_secret_beside_its_key_id(scrubber):
    text = "creds: AKIAZ7QX4L2M5N6P3R7T wT9qZ4Lm2Tt7Vb1Nc8Rk3Wd6Yh0Pj5Sa2Ge7KuQx done"
    assert scrubber.scrub(text).text == "creds: <SECRET> <SECRET> done"


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f9c2a7b1e4d5f6a7b8c9d0e1f2a3b4c5d6e7f8a fixed the build",
        "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA">',
        "https://cdn.example.com/assets/app.4f9c2a7b1e4d5f6a.js?v=8c9d0e1f2a3b",
        "Choose a password: it must be at least 12 characters long.",
        "api_key = YOUR_API_KEY",
        "password: ********",
        "token = os.environ['GITHUB_TOKEN']",
        "secret = ${SECRET_VALUE}",
        "The token: tokenizer splits words.",
        "password=changeme123",
        "api_key=<your-key-here>",
        "eyJ is how base64 of a JSON object starts.",
    ],
)
def test_hashes_images_placeholders_and_prose_are_left(scrubber, text):
    assert scrubber.scrub(text).text == text


def test_entropy_and_randomness_helpers():
    assert shannon_entropy("aaaa") == 0.0 and shannon_entropy("abcd") == 2.0
    assert (
        looks_random("Zq4Lm2Tt7Vb1Nc8R")
        and not looks_random("password1")
        and not looks_random("MY_SECRET_KEY")
    )
