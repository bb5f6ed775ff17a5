"""The web page in headless chromium (Debian's, through chromedriver): a wave file recognized through the page
shows the offline decode's text; the fake microphone (chromium playing a corpus utterance) streams through the
AudioWorklet and shows partial results, the level, and a final segment after Stop. A screenshot of the page
mid-utterance goes to docs/server-page.png when SERVER_PAGE_SCREENSHOT=1."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest
import soundfile
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from icefall_lite.export.sherpa import decode_waves

from .conftest import Corpus, ServerThread

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "server-page.png"
TIMEOUT = 30


def browser(fake_audio: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,600",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_audio}", "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def utterance(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The longest test utterance as a 16 kHz wav (chromium's fake microphone reads wav, not flac)."""
    longest = max(corpus.waves, key=lambda path: soundfile.info(str(path)).frames)
    path = tmp_path_factory.mktemp("page") / "utterance.wav"
    soundfile.write(str(path), corpus.samples(longest), 16000, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def driver(utterance: Path) -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"the page test needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): ./test.sh installs them")
    chrome = browser(utterance)
    try:
        yield chrome
    finally:
        chrome.quit()


def final_segments(chrome: webdriver.Chrome):
    return [item.text for item in chrome.find_elements(By.CSS_SELECTOR, "#segments li")]


def test_a_wave_file_through_the_page_shows_the_offline_text(sherpa_server: ServerThread, driver: webdriver.Chrome, utterance: Path) -> None:
    samples = soundfile.read(str(utterance), dtype="float32")[0]
    expected = decode_waves(sherpa_server.server.recognizer.recognizer, [samples], num_streams=1)[0].text.strip()
    driver.get(sherpa_server.http_url)
    driver.find_element(By.ID, "file").send_keys(str(utterance))
    WebDriverWait(driver, TIMEOUT).until(lambda chrome: final_segments(chrome))
    assert final_segments(driver) == [expected]
    assert "Disconnected" in driver.find_element(By.ID, "status").text


def test_the_microphone_streams_through_the_audio_worklet(sherpa_server: ServerThread, driver: webdriver.Chrome) -> None:
    driver.get(sherpa_server.http_url)
    driver.find_element(By.ID, "start").click()
    WebDriverWait(driver, TIMEOUT).until(lambda chrome: chrome.find_element(By.ID, "partial").text)
    assert "Listening at" in driver.find_element(By.ID, "status").text
    assert float(driver.find_element(By.ID, "level").get_attribute("value")) > 0.01
    time.sleep(1.0)
    if os.environ.get("SERVER_PAGE_SCREENSHOT") == "1":
        driver.save_screenshot(str(SCREENSHOT))
    assert sherpa_server.health()["connections"] == 1
    driver.find_element(By.ID, "start").click()  # Stop: "Done"
    WebDriverWait(driver, TIMEOUT).until(lambda chrome: final_segments(chrome))
    assert len(final_segments(driver)[0]) > 10  # the random model's text for what chromium played
    assert driver.find_element(By.ID, "start").text == "Start"
