"""The ops console in a real browser: Debian's Chromium driven by Playwright (never a
downloaded browser). Sign in, approve an auto-generated job and see it move to dispatch,
watch a new job arrive live (server-sent events), open a device page and see its
telemetry chart and filter-life curve drawn. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from api import ApiContext, create_app
from api.accounts import Accounts, Role
from db.database import Database
from db.tables import work_orders
from fleet.predictions import PredictedExhaustion, Predictions
from service.lifecycle import Origin
from telemetry.backends import StoreSettings, create_store
from telemetry.records import Reading
from tests.service.helpers import opened
from tests.services import free_port, missing

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("FLEETCARE_ARTIFACTS", "test-artifacts"))
NOW = datetime.now(UTC)
PASSWORD = "ops password 1"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """The app on a free port, on SQLite with the test world, a purifier's telemetry
    and a signed-in-able ops account."""
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} (Debian's chromium package)")
    from service.registry import ServiceRegistry, parse_doc
    from tests.world import WORLD

    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    Accounts(db).create("ops-1", name="Mei (ops)", role=Role.OPS)
    Accounts(db).set_password("ops-1", PASSWORD)
    settings = StoreSettings(backend="embedded")
    start = NOW - timedelta(days=3)

    async def seed() -> None:
        async with create_store(settings, str(tmp_path / "ts")) as store:
            await store.write(
                [
                    Reading(
                        device_type="purifier",
                        device_id="ap-1",
                        boot=1,
                        seq=i,
                        ts=int((start + timedelta(minutes=10 * i)).timestamp() * 1000),
                        metrics={"pm25": 20.0 + (i % 36), "fan_rpm": 800.0 + 2 * (i % 50)},
                    )
                    for i in range(3 * 144)
                ]
            )

    import asyncio

    asyncio.run(seed())
    Predictions(db).record(
        [
            PredictedExhaustion(
                "ap-1",
                "main",
                NOW + timedelta(days=9),
                0.8,
                "filter-life",
                low=NOW + timedelta(days=6),
                high=NOW + timedelta(days=13),
                consumed=0.85,
                rated_at=NOW + timedelta(days=40),
            )
        ]
    )
    with serving(ApiContext(db=db, store=create_store(settings, str(tmp_path / "ts")))) as url:
        yield url, db
    db.dispose()


@contextmanager
def serving(ctx: ApiContext) -> Iterator[str]:
    """The app on a free loopback port, in a thread: its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser_page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


def sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/console/login")
    page.fill("input[name=username]", "ops-1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_sign_in_approve_a_job_into_dispatch_and_see_new_jobs_arrive_live(
    console: tuple[str, Database], browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    url, db = console
    page: Page = browser_page  # type: ignore[assignment]
    job = opened(db, "ap-1", "filter_replacement", NOW - timedelta(days=1), origin=Origin.AUTO)

    page.goto(f"{url}/console")
    expect(page).to_have_url(f"{url}/console/login")
    page.fill("input[name=username]", "ops-1")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("wrong account or password")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{url}/console")

    row = page.locator(f"#job-{job}")
    expect(row).to_have_attribute("data-state", "proposed")
    chart = row.locator(".evidence-chart")
    expect(chart).to_have_attribute("data-drawn", "1", timeout=15_000)
    expect(chart.locator("canvas")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)

    row.get_by_role("button", name="Approve").click()
    expect(page.locator(f"#job-{job}")).to_have_attribute("data-state", "assigned")
    expect(page.locator(f"#job-{job}")).to_contain_text("Technician tech-1")
    page.screenshot(path=str(ARTIFACTS / "console-approved.png"), full_page=True)

    # a job raised while the page is open appears without a reload
    fresh = opened(db, "wp-1", "leak", NOW, origin=Origin.AUTO)
    expect(page.locator(f"#job-{fresh}")).to_have_attribute(
        "data-state", "proposed", timeout=15_000
    )


def test_a_device_page_draws_its_telemetry_and_filter_life_curve(
    console: tuple[str, Database], browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    url, _ = console
    page: Page = browser_page  # type: ignore[assignment]
    sign_in(page, url)
    page.goto(f"{url}/console/devices?q=ap-")
    page.get_by_role("link", name="ap-1").click()
    expect(page).to_have_url(f"{url}/console/devices/ap-1")
    telemetry = page.locator("#telemetry-chart")
    expect(telemetry).to_have_attribute("data-drawn", "1", timeout=15_000)
    expect(telemetry.locator("canvas")).to_have_count(1)
    assert int(telemetry.get_attribute("data-points") or 0) > 50  # 3 days in 200 buckets of 7
    curve = page.locator("#filter-curve")
    expect(curve).to_have_attribute("data-drawn", "1")
    expect(curve.locator("canvas")).to_have_count(1)
    expect(page.locator("td.status-warning")).to_have_text("warning")
    # ops can read the household's air report as the household sees it
    report = page.get_by_role("link", name="last month's air report")
    expect(report).to_have_attribute("href", "/my/air/ap-1")
    page.screenshot(path=str(ARTIFACTS / "console-device.png"), full_page=True)
    for board, text in [
        ("sla", "SLA board"),
        ("kpis", "KPIs"),
        ("parts", "Parts demand forecast"),
        ("dead-letters", "Dead letters"),
    ]:
        page.goto(f"{url}/console/{board}")
        expect(page.locator("h1")).to_contain_text(text)


def test_an_agent_finds_the_caller_by_phone_and_opens_a_job_for_them_in_the_console(
    console: tuple[str, Database], browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    url, db = console
    page: Page = browser_page  # type: ignore[assignment]
    sign_in(page, url)
    page.goto(f"{url}/console/devices?q=%2B8613800")  # the caller's number
    page.get_by_role("link", name="wp-1").click()
    expect(page).to_have_url(f"{url}/console/devices/wp-1")
    form = page.get_by_role("form", name="Open a job")
    form.get_by_label("Problem").select_option("leak")
    form.get_by_label("Caller").fill("Mrs Wang")
    form.get_by_label("What they say").fill("Water under the sink since this morning")
    form.get_by_role("button", name="Open job").click()
    expect(page.get_by_role("status")).to_contain_text("opened; the customer has been told")
    expect(page.locator("#device-jobs")).to_contain_text("Water leak — open")
    page.screenshot(path=str(ARTIFACTS / "console-intake.png"), full_page=True)
    # the same problem again is added to the live job, not a second one
    page.get_by_role("form", name="Open a job").get_by_label("Problem").select_option("leak")
    page.get_by_role("form", name="Open a job").get_by_role("button", name="Open job").click()
    expect(page.get_by_role("status")).to_contain_text("Added to live job")
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(work_orders.c.origin, work_orders.c.evidence_count).where(
                work_orders.c.device_id == "wp-1"
            )
        ).all()
    assert rows == [("phone", 2)]


def test_an_agent_works_the_callback_queue_and_ops_resolve_the_complaint(
    console: tuple[str, Database], browser_page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    from tests.api.test_aftercare import completed

    url, db = console
    quiet = completed(db, tmp_path, "ap-1", "SN-AP-1")
    unhappy = completed(db, tmp_path, "ap-2", "SN-AP-2")
    page: Page = browser_page  # type: ignore[assignment]
    sign_in(page, url)
    page.get_by_role("link", name="Callbacks").click()
    expect(page.locator("#callbacks")).to_contain_text("+8613800000000")  # Wang's number

    call = page.get_by_role("form", name=f"Callback for job {quiet}")
    call.get_by_role("button", name="No answer").click()
    expect(page.get_by_role("status")).to_contain_text(f"Job #{quiet}: no answer (1 so far)")

    call = page.get_by_role("form", name=f"Callback for job {unhappy}")
    call.get_by_label("What they said").fill("the filter rattles")
    call.get_by_label("Stars").select_option("2")
    call.get_by_role("button", name="Not satisfied").click()
    expect(page.get_by_role("status")).to_contain_text("the commission is held")
    expect(page.locator(f"tr[data-order='{unhappy}']")).to_have_count(0)  # done with
    expect(page.locator(f"tr[data-order='{quiet}'] td").nth(6)).to_have_text("1")  # one try

    page.get_by_role("link", name="Complaints").click()
    row = page.locator("#complaints tbody tr").first
    expect(row).to_contain_text(f"job #{unhappy}")
    expect(row).to_contain_text("the filter rattles")
    page.screenshot(path=str(ARTIFACTS / "console-complaints.png"), full_page=True)
    row.get_by_label("Resolution").fill("bracket tightened")
    row.get_by_role("button", name="Not upheld").click()
    expect(page.get_by_role("status")).to_contain_text("the held commission is released")
    expect(page.locator("#complaints")).to_contain_text("No open complaints.")
    from service.settlement import Settlement, Status

    [line] = [
        i
        for i in Settlement(db).items(
            NOW - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
        )
        if i.order_id == unhappy
    ]
    assert (line.status, line.reason) == (
        Status.PAYABLE,
        "complaint 1 not upheld: bracket tightened",
    )


def test_an_outlet_answers_the_jobs_offered_to_it_and_ships_a_diy_filter(
    console: tuple[str, Database], browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    from service.packages import Fulfilment, Packages
    from tests.service.test_network import network

    url, db = console
    network(db)  # o-1 accepts its jobs within two hours; o-2 takes them at once
    taken = opened(db, "ap-1", "inspection", NOW)
    passed_on = opened(db, "ap-3", "inspection", NOW)
    [wang] = Packages(db).find(device_ids=["ap-2"])
    Packages(db).change(wang.id, fulfilment=Fulfilment.DIY)
    diy = opened(db, "ap-2", "filter_replacement", NOW, origin=Origin.AUTO)
    page: Page = browser_page  # type: ignore[assignment]
    sign_in(page, url)
    page.get_by_role("link", name="Outlet jobs").click()
    expect(page.locator("#offers tbody tr")).to_have_count(3)
    page.get_by_role("form", name=f"Answer for job {taken}").get_by_role(
        "button", name="Accept"
    ).click()
    expect(page.get_by_role("status")).to_contain_text(f"Job #{taken} accepted: tech-1 is sent")
    answer = page.get_by_role("form", name=f"Answer for job {passed_on}")
    answer.get_by_role("button", name="Decline").click()
    expect(page.get_by_role("alert")).to_contain_text("say why")
    answer = page.get_by_role("form", name=f"Answer for job {passed_on}")
    answer.get_by_label("Why not").fill("nobody free this week")
    answer.get_by_role("button", name="Decline").click()
    expect(page.get_by_role("status")).to_contain_text("it went to outlet o-2")
    page.screenshot(path=str(ARTIFACTS / "console-outlet-jobs.png"), full_page=True)

    # the diy replacement was offered too: accepted, it goes to shipping, not to a visit
    page.get_by_role("form", name=f"Answer for job {diy}").get_by_role(
        "button", name="Accept"
    ).click()
    expect(page.get_by_role("status")).to_contain_text(f"Job #{diy} accepted: it goes to Shipments")
    page.get_by_role("link", name="Shipments").click()
    ship = page.get_by_role("form", name=f"Ship job {diy}")
    ship.get_by_label("Carrier").fill("SF Express")
    ship.get_by_label("Tracking number").fill("SF42")
    ship.get_by_role("button", name="Ship").click()
    expect(page.get_by_role("status")).to_contain_text("the filter is on its way (SF Express SF42)")
    expect(page.locator(f"#shipments tr[data-order='{diy}']")).to_contain_text("in_progress")
    page.screenshot(path=str(ARTIFACTS / "console-shipments.png"), full_page=True)


def test_rd_reads_failure_rates_and_survival_by_batch_on_the_quality_page(
    console: tuple[str, Database], browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    from db.tables import device_sites, devices
    from tests.service.helpers import repaired

    url, db = console
    at = NOW - timedelta(days=60)
    with db.engine.begin() as conn:  # ap-1 (batch L1) failed 140 days into service
        for device, batch in (("ap-1", "L1"), ("ap-2", "L2")):
            conn.execute(devices.update().where(devices.c.id == device).values(batch=batch))
            conn.execute(
                device_sites.update()
                .where(device_sites.c.device_id == device)
                .values(installed_on=(NOW - timedelta(days=200)).date())
            )
    repaired(db, "ap-1", at)
    page: Page = browser_page  # type: ignore[assignment]
    sign_in(page, url)
    page.goto(f"{url}/console/quality?by=batch")
    expect(page.locator("h1")).to_contain_text("Quality by batch")
    for chart in ("#quality-rates", "#quality-survival"):
        expect(page.locator(chart)).to_have_attribute("data-drawn", "1", timeout=15_000)
        expect(page.locator(chart).locator("canvas")).to_have_count(1)
    l1 = page.locator("#quality-summary tr", has_text="L1")
    expect(l1.locator("td").nth(2)).to_have_text("1")  # one failure
    expect(l1.locator("td").nth(4)).to_have_text("140")  # the median: its one unit failed
    expect(page.locator("#quality-modes")).to_contain_text("motor_wear")
    href = page.get_by_role("link", name="rates (CSV)").get_attribute("href")
    csv = page.request.get(f"{url}{href}")  # the console's session signs it
    assert csv.ok and csv.text().startswith("group,month,units,failures,per_1000")
    page.screenshot(path=str(ARTIFACTS / "console-quality.png"), full_page=True)
    page.get_by_role("link", name="firmware").click()
    expect(page.locator("h1")).to_contain_text("Quality by firmware")


@pytest.fixture
def air_home(tmp_path: Path) -> Iterator[tuple[str, date]]:
    """The app with Li's purifier ap-1 and eleven neighbours' reporting all last month
    (Shanghai time), and Li's account with a password. The URL and the month."""
    import asyncio
    from zoneinfo import ZoneInfo

    from service.air_report import AirReports
    from service.registry import ServiceRegistry, parse_doc
    from tests.service.test_air_report import home_value, neighbour_value, neighbours, readings
    from tests.world import WORLD

    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} (Debian's chromium package)")
    zone = ZoneInfo("Asia/Shanghai")
    month = AirReports.last_month(NOW, "Asia/Shanghai")
    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    ServiceRegistry(db).load(parse_doc(neighbours(11)))  # type: ignore[arg-type]
    Accounts(db).create("li", name="Li", role=Role.CUSTOMER, customer_id="c-app")
    Accounts(db).set_password("li", PASSWORD)
    settings = StoreSettings(backend="embedded")

    async def seed() -> None:
        async with create_store(settings, str(tmp_path / "ts")) as store:
            await store.write(readings("ap-1", home_value, zone, month))
            for i in range(11):
                await store.write(readings(f"n{i}-0", neighbour_value(i), zone, month))

    asyncio.run(seed())
    with serving(ApiContext(db=db, store=create_store(settings, str(tmp_path / "ts")))) as url:
        yield url, month
    db.dispose()


def test_a_household_opens_its_monthly_air_report_from_the_link_and_sees_it_drawn(
    air_home: tuple[str, date], browser_page: object
) -> None:
    """Li follows the message's link, signs in, and reads last month's report: the
    advice, the hours above the guideline, the neighbourhood (eleven other homes) and
    both charts drawn."""
    from playwright.sync_api import Page, expect

    url, month = air_home
    m = f"{month:%Y-%m}"
    page: Page = browser_page  # type: ignore[assignment]
    page.goto(f"{url}/my/air/ap-1?month={m}")
    expect(page).to_have_url(f"{url}/my/login?next=%2Fmy%2Fair%2Fap-1%3Fmonth%3D{m}")
    page.fill("input[name=username]", "li")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(f"Your home's air in {m}")
    days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
    # every evening 18-22 h above the guideline, and the whole of the 10th
    expect(page.locator("[data-hours-out]")).to_have_text(str((days - 1) * 4 + 24))
    expect(page.locator("[data-advice=out_of_bounds]")).to_contain_text("18:00-22:00")
    expect(page.locator("[data-neighbourhood]")).to_contain_text("12 homes")
    for chart in ("[data-air-hours]", "[data-air-days]"):
        expect(page.locator(chart)).to_have_attribute("data-drawn", "1", timeout=15_000)
        expect(page.locator(chart).locator("canvas")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "air-report.png"), full_page=True)


def test_ops_plan_the_peaks_stock_and_make_a_transfer_from_the_plan(
    console: tuple[str, Database], browser_page: object
) -> None:
    """A sales peak of 60 air conditioners in two weeks: the stock plan page charts the
    installation kits' demand at every level, lists the transfer the East depot needs
    this week, and one click makes it."""
    from playwright.sync_api import Page, expect

    from service.registry import ServiceRegistry, parse_doc
    from service.stock import Level, Location, Stock
    from service.stock_plan import SalesPlan, SalesPlanRow
    from telemetry.profile import shipped
    from tests.service.test_stock import NETWORK

    url, db = console
    ServiceRegistry(db).load(parse_doc(NETWORK))  # type: ignore[arg-type]
    Stock(db).receive("AC-INSTALL-KIT", 200, Location(Level.CENTRAL, "cn"), actor="buyer")
    peak = (NOW + timedelta(days=14)).date()
    SalesPlan(db, shipped()).save(
        [SalesPlanRow(region_id="east", model="KFR-35GW", week=peak, units=60)]
    )
    page: Page = browser_page  # type: ignore[assignment]
    sign_in(page, url)
    page.goto(f"{url}/console/stock?sku=AC-INSTALL-KIT&weeks=6")
    expect(page.locator("h1")).to_contain_text("Stock plan, 6 weeks")
    expect(page.locator("#stock-chart")).to_have_attribute("data-drawn", "1", timeout=15_000)
    expect(page.locator("#stock-chart canvas")).to_have_count(1)
    expect(page.locator("#stock-grid")).to_contain_text("van:tech-1")
    due = (
        page.locator("#stock-now tr", has_text="AC-INSTALL-KIT")
        .filter(has_text="central:cn")
        .filter(has_text="distribution:dc-east")
    )
    expect(due).to_have_count(1)
    due.get_by_role("button", name="Transfer").click()
    expect(page.locator(".notice")).to_contain_text(
        "AC-INSTALL-KIT from central:cn to distribution:dc-east"
    )
    moved = Stock(db).held(Location(Level.DISTRIBUTION, "dc-east"), "AC-INSTALL-KIT")
    assert moved and moved[0].qty > 0
    page.screenshot(path=str(ARTIFACTS / "console-stock.png"), full_page=True)
