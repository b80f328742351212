"""Charts speak the page's language: on the Indonesian site Plotly writes
tick numbers with a decimal comma and dates with Indonesian month names; the
English site keeps Plotly's own."""

import pytest

pytestmark = pytest.mark.browser

# A chart drawn on the page with the page's own Plotly set-up: ticks of
# decimals on y, months on x.
DRAW = """async () => {
  const holder = document.createElement("div");
  holder.style.width = "600px";
  holder.style.height = "300px";
  document.body.appendChild(holder);
  await Plotly.newPlot(holder, [{x: ["2026-05-01", "2026-08-31"], y: [0.5, 2.5], type: "scatter"}],
                       {xaxis: {type: "date"}}, {displayModeBar: false});
  const ticks = (axis) => Array.from(holder.querySelectorAll("." + axis + "tick text")).map((t) => t.textContent);
  return {x: ticks("x"), y: ticks("y")};
}"""


@pytest.mark.parametrize(
    "locale,decimal,month,other_month",
    [("id-ID", "0,5", "Agu", "Aug"), ("en-US", "0.5", "Aug", "Agu")],
)
def test_chart_ticks_use_the_pages_language(live_server_url, browser, locale, decimal, month, other_month):
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(live_server_url + "/monitoring/")
        page.wait_for_function("() => window.Plotly !== undefined")
        ticks = page.evaluate(DRAW)
        assert decimal in ticks["y"], ticks
        assert any(month in t for t in ticks["x"]) and not any(other_month in t for t in ticks["x"]), ticks
        assert not errors, errors
    finally:
        context.close()
