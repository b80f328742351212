"""The Indonesian site: a complete catalogue, every page read in Indonesian
with no English left from the catalogue, the language switcher, and amounts
and dates written the Indonesian way."""

import gettext as gettext_module
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.accounts.services import open_wallet
from apps.core.amounts import display_uath, format_uath
from apps.core.parameter_labels import GROUPS, LABELS
from apps.core.parameters import DEFINITIONS

from ..factories import make_node
from ..security.conftest import online, world  # noqa: F401  (the fixture)
from ..security.routes import all_routes, url_for

LOCALE = Path(settings.BASE_DIR) / "locale" / "id" / "LC_MESSAGES"
ID = {"HTTP_ACCEPT_LANGUAGE": "id"}


@pytest.fixture(autouse=True)
def _back_to_english():
    # A request activates its language for the thread and leaves it active:
    # the tests after these must not run in Indonesian.
    yield
    translation.deactivate()


def po_entries(domain="django", locale=LOCALE):
    """(msgid, msgid_plural, [msgstr...], flags) of a catalogue, read plainly."""
    entries, current, field, flags = [], None, None, []
    for line in (locale / f"{domain}.po").read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current is not None:
                entries.append(current)
            current, field, flags = None, None, []
            continue
        if line.startswith("#,"):
            flags = [f.strip() for f in line[2:].split(",")]
            continue
        if line.startswith("#"):
            continue
        match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) "(.*)"$', line)
        if match:
            if current is None:
                current = {"msgctxt": None, "msgid": "", "msgid_plural": None, "msgstr": [], "flags": flags}
            field = match.group(1)
            value = match.group(2)
            if field.startswith("msgstr"):
                current["msgstr"].append(value)
            else:
                current[field] = value
            continue
        assert line.startswith('"'), line
        value = line[1:-1]
        if field.startswith("msgstr"):
            current["msgstr"][-1] += value
        else:
            current[field] += value
    return [e for e in entries if e["msgid"]]


def unescape(text: str) -> str:
    """A .po string's escapes (\\", \\n, \\t, \\\\) as the characters they stand for."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def compiled_catalogue(domain="django") -> dict:
    with open(LOCALE / f"{domain}.mo", "rb") as f:
        return gettext_module.GNUTranslations(f)._catalog


@pytest.mark.parametrize(("domain", "at_least"), [("django", 500), ("djangojs", 20)])
def test_every_message_has_an_indonesian_translation_and_the_compiled_catalogue_is_current(domain, at_least):
    entries = po_entries(domain)
    assert len(entries) > at_least
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"]) or not e["msgstr"]]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert not untranslated, f"no Indonesian for: {untranslated[:10]}"
    assert not fuzzy, f"fuzzy: {fuzzy[:10]}"
    compiled = compiled_catalogue(domain)
    stale = [
        e["msgid"]
        for e in entries
        if e["msgid_plural"] is None
        and (unescape(e["msgctxt"]) + "\x04" if e["msgctxt"] else "") + unescape(e["msgid"]) not in compiled
    ]
    assert not stale, f"django.mo is older than django.po (run msgfmt): {stale[:5]}"


def test_every_protocol_parameter_label_and_group_is_listed_for_translation():
    assert {p.label for p in DEFINITIONS.values()} <= set(LABELS)
    assert {p.group for p in DEFINITIONS.values()} <= set(GROUPS)


# --- The page walk -------------------------------------------------------------

SKIPPED_TAGS = {"script", "style", "code", "pre", "textarea"}


class VisibleText(HTMLParser):
    """Text nodes a person reads (and the titles, labels and placeholders
    that browsers show), each stripped; code and scripts left out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.nodes, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED_TAGS:
            self.skip += 1
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label", "alt") and value:
                self.nodes.append(value.strip())

    def handle_endtag(self, tag):
        if tag in SKIPPED_TAGS and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.nodes.append(" ".join(data.split()))


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.nodes


def indonesian_texts() -> set[str]:
    """Every Indonesian string and fragment between tags: a text node that
    is one of them is Indonesian even where it spells like an English
    message ("Filter" translates "Filters")."""
    texts = set()
    for entry in po_entries():
        translated = unescape(entry["msgstr"][0])
        texts.update(" ".join(part.split()) for part in re.split(r"<[^>]+>", translated))
    return texts


def english_patterns():
    """A pattern per English message whose Indonesian differs, matching a
    whole text node: placeholders match anything, markup splits nodes."""
    patterns = []
    for entry in po_entries():
        for source, translated in ((entry["msgid"], entry["msgstr"][0]),):
            source = unescape(source)
            translated = unescape(translated)
            if source == translated:
                continue  # the same in both languages ("Status", "Total", "Epoch")
            # The message's text between its tags, placeholders as wildcards.
            for part in re.split(r"<[^>]+>", source):
                part = " ".join(part.split())
                words = re.sub(r"%\(\w+\)[sd]|%[sd]", "", part)
                letters = sum(len(w) for w in re.findall(r"[A-Za-z]{3,}", words))
                # Too little text to tell the languages apart ("%(m)s min", "%(tier)s SLA").
                if letters < 3 or (words != part and letters < 6):
                    continue
                if part.lower() in translated.lower():
                    continue  # this fragment is kept in Indonesian too (a name, a code)
                regex = "".join(
                    r".+?" if re.fullmatch(r"%\(\w+\)[sd]|%[sd]", tok) else re.escape(tok.replace("%%", "%"))
                    for tok in re.split(r"(%\(\w+\)[sd]|%[sd])", part)
                    if tok
                )
                patterns.append((source, re.compile(rf"^\W*{regex}\W*$")))
    return patterns


ENGLISH_WORDS = {
    "the",
    "and",
    "to",
    "of",
    "is",
    "your",
    "you",
    "for",
    "with",
    "this",
    "are",
    "be",
    "by",
    "its",
    "it",
    "not",
    "yet",
    "once",
    "in",
    "on",
    "from",
    "has",
    "have",
    "at",
    "an",
    "no",
    "or",
    "will",
    "can",
    "was",
}


def looks_english(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    return len(words) >= 3 and sum(w in ENGLISH_WORDS for w in words) >= 2


def stored_texts() -> set[str]:
    """Every text stored in the project's tables (memos, reasons, names):
    records are shown as they were written, in whatever language."""
    from django.db import models

    from ..security.conftest import project_models

    texts = set()
    for model in project_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))]
        if names:
            for row in model.objects.values_list(*names):
                texts.update(" ".join(v.split()) for v in row if isinstance(v, str) and len(v) >= 8)
    return texts


def page_routes():
    skip_prefixes = ("api/", "admin/", "i18n/", "healthz", "accounts/logout")
    return [r for r in all_routes() if not r.route.startswith(skip_prefixes) and "<path" not in r.route]


def walk(client, w, routes):
    """GET every page of ``routes`` in Indonesian and in English: {url: (id html, en html)}."""
    pages = {}
    for route in routes:
        try:
            url = url_for(route, w)
        except AssertionError:
            continue  # a URL this walk cannot fill in
        response = client.get(url, **ID)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        pages[url] = (response.content.decode(), client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    return pages


def english_left(where, html, english_html, patterns, indonesian, stored) -> list[str]:
    """The English an Indonesian page still shows: a message of the catalogue
    left in English, or a sentence the English page shows too that was never
    marked for translation (stored records aside)."""
    assert "<html" not in html or '<html lang="id">' in html, where
    found = []
    english_nodes = set(visible_text(english_html))
    for node in visible_text(html):
        if node in indonesian:
            continue
        source = next((source for source, pattern in patterns if pattern.match(node)), None)
        if source is not None:
            found.append(f"{where}: {node!r} (msgid {source!r})")
        elif node in english_nodes and looks_english(node) and not any(text in node or node in text for text in stored):
            # The same English sentence in both languages: never marked for translation.
            found.append(f"{where}: {node!r} (not marked for translation)")
    return found


@pytest.mark.django_db
def test_no_page_of_the_indonesian_site_shows_english_from_the_catalogue(world):  # noqa: F811
    patterns = english_patterns()
    indonesian = indonesian_texts()
    owner = Client()
    owner.force_login(world.owner)
    routes = page_routes()
    found = []
    seen = 0
    stored = stored_texts()
    for who, client in (("anonymous", Client()), ("owner", owner)):
        pages = walk(client, world, routes)
        seen += len(pages)
        for url, (html, english_html) in pages.items():
            found += english_left(f"{who} {url}", html, english_html, patterns, indonesian, stored)
    assert seen >= 40, f"only {seen} pages rendered"
    assert not found, "English on the Indonesian site:\n" + "\n".join(found[:40])


def test_the_reviews_before_moving_money_are_indonesian_too(world):  # noqa: F811
    """Pages that only a form's answer shows (each review before Send,
    Delegate, Undelegate, Redelegate, renting and ending a rental) are read
    in Indonesian like the rest."""
    owner = Client()
    owner.force_login(world.owner)
    other = open_wallet(world.stranger).address
    free_node = online(make_node(name="free-node")[0])
    posts = [
        (reverse("accounts:send"), {"to_address": other, "amount": "5", "review": "1"}),
        (reverse("staking:delegate"), {"checker": world.checker.pk, "amount": "200", "review": "1"}),
        (reverse("staking:undelegate"), {"checker": world.checker.pk, "amount": "50", "review": "1"}),
        (
            reverse("staking:redelegate"),
            {"src": world.checker.pk, "dst": world.other_checker.pk, "amount": "50", "review": "1"},
        ),
        (reverse("marketplace:rental-end", args=[world.rental.pk]), {"review": "1"}),
        (
            reverse("marketplace:rent", args=[free_node.pk]),
            {"mode": "reserved", "hours": "1", "image": "ollama/ollama:latest"},
        ),
    ]
    patterns, indonesian, stored = english_patterns(), indonesian_texts(), stored_texts()
    found = []
    for url, data in posts:
        html = owner.post(url, data, **ID)
        english = owner.post(url, data, HTTP_ACCEPT_LANGUAGE="en")
        assert html.status_code == english.status_code == 200, (url, html.status_code)
        assert re.search(r'data-testid="confirm-(send|stake|end|rent)"', html.content.decode()), (
            url
        )  # the review itself
        found += english_left(url, html.content.decode(), english.content.decode(), patterns, indonesian, stored)
    assert not found, "English on the Indonesian reviews:\n" + "\n".join(found[:40])


def test_the_english_site_is_unchanged_by_the_catalogue(world):  # noqa: F811
    body = Client().get(reverse("marketplace:index")).content.decode()
    assert '<html lang="en">' in body
    assert "Rent verified GPUs from independent providers." in body
    assert "Browse GPUs" in body


# --- The switcher ---------------------------------------------------------------


def test_the_switcher_sets_the_language_for_every_page_after_it(genesis):
    client = Client()
    page = client.get(reverse("explorer:index")).content.decode()
    assert 'data-testid="language-switcher"' in page and 'value="id"' in page and "Bahasa Indonesia" in page
    response = client.post(reverse("set_language"), {"language": "id", "next": reverse("explorer:index")})
    assert response.status_code == 302 and response["Location"] == reverse("explorer:index")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "id"
    page = client.get(reverse("marketplace:index")).content.decode()
    assert '<html lang="id">' in page and "Pasar GPU" in page and "GPU marketplace" not in page
    # ...and back.
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "GPU marketplace" in client.get(reverse("marketplace:index")).content.decode()


def test_the_charts_get_their_labels_in_the_pages_language(genesis):
    page = Client().get(reverse("monitoring:index"), **ID).content.decode()
    assert reverse("javascript-catalog") in page
    catalogue = Client().get(reverse("javascript-catalog"), **ID)
    assert catalogue.status_code == 200 and "javascript" in catalogue["Content-Type"]
    body = catalogue.content.decode()
    assert "Belum ada data." in body and "pelanggaran SLA" in body
    assert "Belum ada data." not in Client().get(reverse("javascript-catalog")).content.decode()


def test_the_switcher_never_redirects_off_site(genesis):
    response = Client().post(reverse("set_language"), {"language": "id", "next": "https://evil.example/"})
    assert response.status_code == 302 and not response["Location"].startswith("https://evil")


def test_the_browser_language_is_used_until_the_person_chooses(genesis):
    page = Client().get(reverse("governance:index"), HTTP_ACCEPT_LANGUAGE="id-ID,id;q=0.9,en;q=0.5")
    assert "Tata kelola" in page.content.decode()
    page = Client().get(reverse("governance:index"), HTTP_ACCEPT_LANGUAGE="fr-FR")
    assert "Governance" in page.content.decode()


# --- Numbers and dates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("micro", "english", "indonesian"),
    [
        (1_234_567_890, "1,234.56789 ATH", "1.234,56789 ATH"),
        (-30_000_000, "-30 ATH", "-30 ATH"),
        (1, "0.000001 ATH", "0,000001 ATH"),
        (76_048_123_456_789, "76,048,123.456789 ATH", "76.048.123,456789 ATH"),
    ],
)
def test_amounts_use_the_languages_separators_with_the_same_digits(micro, english, indonesian):
    with translation.override("en"):
        assert display_uath(micro) == english == format_uath(micro)
    with translation.override("id"):
        assert display_uath(micro) == indonesian
        # Machine-read text keeps one notation whatever the language.
        assert format_uath(micro) == english


def test_template_filters_write_amounts_and_percentages_the_indonesian_way():
    template = Template("{% load ath %}{{ a|ath }}|{{ a|ath:2 }}|{{ p|ppm_percent }}|{{ s|signed_ath }}")
    context = Context({"a": 1_234_567_890, "p": 52_500, "s": 2_500_000})
    with translation.override("en"):
        assert template.render(context) == "1,234.56789 ATH|1,234.56 ATH|5.25%|+2.5 ATH"
    with translation.override("id"):
        assert template.render(context) == "1.234,56789 ATH|1.234,56 ATH|5,25%|+2,5 ATH"


def test_dates_on_pages_follow_the_language(world):  # noqa: F811
    tx_url = reverse("explorer:transaction", args=[1])
    english = Client().get(tx_url).content.decode()
    indonesian = Client().get(tx_url, **ID).content.decode()
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} UTC", english)
    # 6 Des 2026 07.04.20,123456 UTC: day, Indonesian month, dotted time, decimal comma.
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}\.\d{2}\.\d{2},\d{6} UTC", indonesian)


# --- Typed amounts ----------------------------------------------------------------


def test_typed_amounts_keep_one_notation_and_a_dot_grouped_thousand_is_refused_in_indonesian():
    from apps.core.amounts import AmountError, parse_ath

    with translation.override("en"):
        assert parse_ath("1.000") == 1_000_000  # one ATH, as always
        assert parse_ath("1,000.5") == 1_000_500_000
    with translation.override("id"):
        # Indonesian pages write one thousand as "1.000 ATH": typed back, it must not become 1 ATH.
        with pytest.raises(AmountError, match="tanpa titik ribuan"):
            parse_ath("1.000")
        with pytest.raises(AmountError):
            parse_ath("12.345.678")
        with pytest.raises(AmountError, match="titik untuk desimal"):
            parse_ath("1.234,5")
        with pytest.raises(AmountError, match="koma"):
            parse_ath("12,5")
        assert parse_ath("1000") == parse_ath("1,000") == 1_000_000_000
        assert parse_ath("1.5") == 1_500_000
        assert parse_ath("0.001") == 1_000
        assert parse_ath("12.3456") == 12_345_600


def test_a_refused_amount_is_explained_in_indonesian_and_moves_nothing(world):  # noqa: F811
    client = Client()
    client.force_login(world.owner)
    before = world.wallet.available
    response = client.post(
        reverse("accounts:send"),
        {"to_address": world.provider2.wallet.address, "amount": "1.000", "memo": "", "review": "1"},
        **ID,
    )
    assert response.status_code == 400
    assert "tanpa titik ribuan" in response.content.decode()
    world.wallet.refresh_from_db()
    assert world.wallet.available == before


@pytest.mark.skipif(not shutil.which("xgettext"), reason="extracting messages needs GNU gettext")
def test_every_marked_message_is_in_the_catalogue(tmp_path):
    """The catalogue is extracted from the code as it is now: a message marked
    for translation but never extracted would show in English on the
    Indonesian site without the tests above noticing. makemessages runs on
    a copy of the project, so the catalogue here is not touched."""
    root = Path(settings.BASE_DIR)
    for name in ("apps", "aethir_web", "templates", "locale", "static"):
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "vendor"))
    shutil.copy(root / "manage.py", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "AETHIR_VAR_DIR": str(tmp_path / "var")}
    # As README's maintainers' commands: the page text, then the charts' (never the vendored libraries).
    for domain, ignore in (("django", "static"), ("djangojs", "static/vendor")):
        subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-l", "id", "-d", domain, f"--ignore={ignore}"]
            + ["--no-obsolete", "-v", "0"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
        )
        before = {(e["msgctxt"], e["msgid"]) for e in po_entries(domain)}
        after = {(e["msgctxt"], e["msgid"]) for e in po_entries(domain, tmp_path / "locale" / "id" / "LC_MESSAGES")}
        assert not after - before, f"marked but not in {domain}.po (run makemessages): {sorted(after - before)[:10]}"
