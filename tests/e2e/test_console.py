"""The console in a real browser, as a person sets the service up: sign in, connect the sandbox's
GHL location with the app install, drag a Rankr custom field onto a GHL one, switch on a task
template, then create a contact in the Rankr sandbox's page and see the GHL contact carry the value,
the task appear, and every write in Activity.

Each console page is photographed at 1280 and 390 pixels wide into build/screenshots/ (the README
names the folder), so a reviewer can look at them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from app.sandbox import keys
from tests.support.browser import headless_chromium
from tests.support.service import Service, running_service, wait_for

TOKEN = "s3cret-console"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WIDTHS = (1280, 390)

# Fires the page's own drag-and-drop handlers: chromedriver's pointer actions do not start an HTML5
# drag (the browser's native drag loop never runs under automation), so the events are dispatched.
DRAG = """
const [source, target] = arguments;
const data = new DataTransfer();
source.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: data}));
target.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: data}));
target.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: data}));
"""


def shoot(browser: webdriver.Chrome, name: str) -> None:
    """The page as it is, at each width; the page must not scroll sideways at either."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        browser.set_window_size(width, 1100)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, min(max(int(height) + 120, 700), 6000))
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name} scrolls sideways at {width} px"
        browser.save_screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))
    browser.set_window_size(WIDTHS[0], 1100)


def click(browser: webdriver.Chrome, element_id: str) -> None:
    element = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def ghl_tasks(service: Service, contact_id: str) -> list[dict[str, Any]]:
    answer = service.ghl.api("GET", f"/contacts/{contact_id}/tasks")
    return list(answer.json().get("tasks", []))


@pytest.mark.e2e
def test_an_operator_sets_up_the_sync_in_the_console(sqlite_url: str) -> None:
    with running_service(sqlite_url, admin_token=TOKEN) as service, headless_chromium() as browser:
        url = service.url
        # The products hold what there is to map: a GHL custom field, a Rankr contact with a key.
        browser.get(f"{url}/sandbox/ghl/ui")
        browser.find_element(By.NAME, "name").send_keys("Industry")
        Select(browser.find_element(By.NAME, "dataType")).select_by_visible_text("TEXT")
        browser.find_element(By.XPATH, "//button[text()='Create custom field']").click()
        wait_for(lambda: "Custom field Industry created." in browser.page_source, what="the GHL field")
        browser.get(f"{url}/sandbox/rankr/ui")
        browser.find_element(By.NAME, "email").send_keys(f"first.{uuid.uuid4().hex[:6]}@example.com")
        browser.find_element(By.NAME, "customFields").send_keys("industry=Looms")
        browser.find_element(By.XPATH, "//button[text()='Create contact']").click()
        wait_for(lambda: "Contact created." in browser.page_source, what="the first Rankr contact")

        # Signed out, the console leads to its sign-in page.
        browser.get(f"{url}/admin/")
        wait_for(lambda: browser.find_elements(By.ID, "sign-in"), what="the sign-in page")
        shoot(browser, "01-sign-in")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
        wait_for(lambda: browser.find_elements(By.ID, "connections"), what="the connections page")

        # Connect the location afresh: remove the connection the sandbox starts with, then install.
        browser.find_element(
            By.LINK_TEXT, browser.find_element(By.CSS_SELECTOR, "#connections a").text
        ).click()
        wait_for(lambda: browser.find_elements(By.ID, "facts"), what="the connection page")
        click(browser, "remove")
        wait_for(lambda: browser.find_elements(By.ID, "consequences"), what="the consequences")
        shoot(browser, "03-remove")
        click(browser, "confirm-remove")
        wait_for(lambda: browser.find_elements(By.ID, "no-connections"), what="no connection")
        account = browser.find_element(By.CSS_SELECTOR, "#add-oauth input[name=rankrAccountId]")
        account.clear()
        account.send_keys(keys.RANKR_ACCOUNT_ID)
        browser.find_element(By.CSS_SELECTOR, "#add-oauth button").click()
        click(browser, "install")
        wait_for(lambda: "Choose a sub-account" in browser.page_source, what="GHL's chooser")
        browser.find_element(By.XPATH, "//button[text()='Allow']").click()
        wait_for(lambda: "Connected" in browser.title, what="the install's end")
        browser.get(f"{url}/admin/console/")
        row = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#connections tr[data-connection]"))
        assert "verified" in row[0].text
        assert keys.GHL_LOCATION_ID in row[0].text
        shoot(browser, "02-connections")
        row[0].find_element(By.TAG_NAME, "a").click()
        wait_for(lambda: browser.find_elements(By.ID, "facts"), what="the connection page")
        assert "oauth" in browser.find_element(By.ID, "facts").text
        shoot(browser, "04-connection")

        # Map Rankr's 'industry' onto GHL's Industry by dragging it there.
        click(browser, "to-mapping")
        source = wait_for(lambda: browser.find_elements(By.ID, "rankr-industry"), what="Rankr's field")[0]
        target = browser.find_element(By.CSS_SELECTOR, "#ghl-fields li.target")
        assert "TEXT" in target.text
        shoot(browser, "05-mapping")
        browser.execute_script(DRAG, source, target)
        wait_for(lambda: browser.find_elements(By.ID, "notice"), what="the mapping's notice")
        assert browser.find_element(By.ID, "notice").text == "Rankr 'industry' now syncs with GHL 'Industry'."
        assert "← Rankr industry" in browser.find_element(By.ID, "ghl-fields").text
        shoot(browser, "06-mapped")

        # Switch on the task template.
        browser.find_element(By.LINK_TEXT, browser.find_element(By.CSS_SELECTOR, "main p a").text).click()
        click(browser, "to-actions")
        wait_for(lambda: browser.find_elements(By.ID, "action-call-new-lead"), what="the actions page")
        click(browser, "on-call-new-lead")
        wait_for(lambda: browser.find_elements(By.ID, "notice"), what="the action's notice")
        assert browser.find_element(By.ID, "notice").text == "Call every new lead: on for this connection."
        shoot(browser, "07-actions")

        # A person creates a contact in Rankr with that custom field.
        email = f"grace.{uuid.uuid4().hex[:6]}@example.com"
        browser.get(f"{url}/sandbox/rankr/ui")
        browser.find_element(By.NAME, "firstName").send_keys("Grace")
        browser.find_element(By.NAME, "lastName").send_keys("Hopper")
        browser.find_element(By.NAME, "email").send_keys(email)
        browser.find_element(By.NAME, "customFields").send_keys("industry=Compilers")
        browser.find_element(By.XPATH, "//button[text()='Create contact']").click()
        wait_for(lambda: "Contact created." in browser.page_source, what="the Rankr contact")
        service.settle()

        # GHL's contact carries the value, and the task is there.
        [contact] = wait_for(lambda: service.ghl.by_email(email), what="the GHL contact")
        [field] = service.ghl.api("GET", f"/locations/{keys.GHL_LOCATION_ID}/customFields").json()[
            "customFields"
        ]
        assert contact["customFields"] == [{"id": field["id"], "value": "Compilers"}]
        tasks = wait_for(lambda: ghl_tasks(service, contact["id"]), what="the task")
        assert [task["title"] for task in tasks] == ["Call Grace Hopper"]
        browser.get(f"{url}/sandbox/ghl/ui/contacts/{contact['id']}")
        assert "Call Grace Hopper" in browser.page_source
        assert "Compilers" in browser.page_source

        # Activity shows every write: the contact created in GHL, the rule's task there, and that
        # task brought over to Rankr.
        browser.get(f"{url}/admin/console/activity")
        browser.find_element(By.ID, "q").send_keys(email)
        browser.find_element(By.CSS_SELECTOR, "#search button").click()
        rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "table.entries tr[data-entry]"))
        writes = {
            (r.get_attribute("data-kind"), r.get_attribute("data-direction"), r.get_attribute("data-action"))
            for r in rows
        }
        assert {
            ("contact", "to_ghl", "create"),
            ("contact", "to_ghl", "rule"),
            ("task", "to_rankr", "create"),
        } <= writes, writes
        audit = service.http.get(
            f"{url}/admin/contacts/{contact['id']}/history", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        assert len(rows) == len(audit["entries"])
        assert email not in browser.find_element(By.CSS_SELECTOR, "table.entries").text
        shoot(browser, "08-activity")
        rows[0].find_element(By.TAG_NAME, "button").click()
        revealed = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".revealed"), what="the reveal")
        assert email in " ".join(line.text for line in revealed)
        shoot(browser, "09-revealed")

        browser.get(f"{url}/admin/console/settings")
        history = browser.find_element(By.ID, "history").text
        assert f"mapping.locations.{keys.GHL_LOCATION_ID}.customFields.industry" in history
        shoot(browser, "10-settings")
        click(browser, "sign-out")
        wait_for(lambda: browser.find_elements(By.ID, "sign-in"), what="the signed-out page")
        browser.get(f"{url}/admin/console/settings")
        assert browser.find_elements(By.ID, "sign-in")
