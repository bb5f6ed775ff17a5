"""The web page in headless chromium (Debian's, through chromedriver), serving a tiny model trained on a few
utterances: one of them recognized through the page from a wave file shows the offline decode's text; played by
the fake microphone, it streams through the AudioWorklet with partial results and the level, and the page (told
to stop after the file's length, ``?seconds=``, as chromium loops the file) shows the offline decode's text as
its final segment. With ICEFALL_LITE_SCREENSHOT=PATH a screenshot of the page mid-utterance is saved to PATH
(docs/server-page.png is one)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest
import soundfile
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from icefall_lite.export.inputs import SAMPLE_RATE
from icefall_lite.export.sherpa import decode_waves
from icefall_lite.server.recognizers import SherpaRecognizer

from .conftest import MAX_SHIFT_SAMPLES, NO_ENDPOINTS, Corpus, ServerThread, TrainedExport, running

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT_VARIABLE = "ICEFALL_LITE_SCREENSHOT"
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
def utterance(trained_export: TrainedExport) -> Path:
    """The longest utterance the model was trained on, a 16 kHz wav (chromium's fake microphone reads wav)."""
    return max(trained_export.waves, key=lambda path: soundfile.info(str(path)).frames)


@pytest.fixture(scope="module")
def samples(utterance: Path) -> np.ndarray:
    return soundfile.read(str(utterance), dtype="float32")[0]


@pytest.fixture(scope="module")
def trained_server(corpus: Corpus, trained_export: TrainedExport) -> Iterator[ServerThread]:
    yield from running(SherpaRecognizer(trained_export.onnx, corpus.tokens, NO_ENDPOINTS, num_threads=1))


@pytest.fixture(scope="module")
def offline_text(trained_server: ServerThread, samples: np.ndarray) -> str:
    """sherpa_onnx_decode.py's text for the utterance (decode_waves, 0.3 s tail), on the server's recognizer."""
    return decode_waves(trained_server.server.recognizer.recognizer, [samples], num_streams=1)[0].text.strip()


@pytest.fixture(scope="module")
def driver(utterance: Path) -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"the page test needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): ./test.sh installs them")
    chrome = browser(utterance)
    try:
        yield chrome
    finally:
        chrome.quit()


def final_segments(chrome: webdriver.Chrome) -> List[str]:
    return [item.text for item in chrome.find_elements(By.CSS_SELECTOR, "#segments li")]


def test_the_offline_text_is_the_transcript_however_late_the_audio_starts(
    trained_export: TrainedExport, trained_server: ServerThread, utterance: Path, samples: np.ndarray, offline_text: str
) -> None:
    """The premise of the microphone test: the page sends the file a few ms late (leading silence)."""
    assert offline_text == trained_export.texts[trained_export.waves.index(utterance)]
    recognizer = trained_server.server.recognizer.recognizer
    late = [np.concatenate([np.zeros(shift, dtype=np.float32), samples]) for shift in range(0, MAX_SHIFT_SAMPLES + 1, 40)]
    assert [result.text.strip() for result in decode_waves(recognizer, late, num_streams=len(late))] == [offline_text] * len(late)


def test_a_wave_file_through_the_page_shows_the_offline_text(
    trained_server: ServerThread, driver: webdriver.Chrome, utterance: Path, offline_text: str
) -> None:
    driver.get(trained_server.http_url)
    driver.find_element(By.ID, "file").send_keys(str(utterance))
    WebDriverWait(driver, TIMEOUT).until(lambda chrome: final_segments(chrome))
    assert final_segments(driver) == [offline_text]
    assert "Disconnected" in driver.find_element(By.ID, "status").text


def test_the_microphone_streams_through_the_audio_worklet_to_the_offline_text(
    trained_server: ServerThread, driver: webdriver.Chrome, samples: np.ndarray, offline_text: str
) -> None:
    driver.get(trained_server.http_url + f"?seconds={len(samples) / SAMPLE_RATE}")
    driver.find_element(By.ID, "start").click()
    partials: List[str] = []
    level, status, connections = 0.0, "", None
    screenshot = os.environ.get(SCREENSHOT_VARIABLE)
    deadline = time.monotonic() + TIMEOUT
    while not final_segments(driver) and time.monotonic() < deadline:
        partial = driver.find_element(By.ID, "partial").text
        if partial and partial not in partials:
            if not partials:  # while the utterance is being spoken
                status = driver.find_element(By.ID, "status").text
                connections = trained_server.health()["connections"]
            partials.append(partial)
            if screenshot and 2 * len(partial.split()) >= len(offline_text.split()):
                driver.save_screenshot(screenshot)  # mid-utterance: half the words are in
                screenshot = None
        level = max(level, float(driver.find_element(By.ID, "level").get_attribute("value")))
        time.sleep(0.02)
    assert final_segments(driver) == [offline_text], f"partial results on the way: {partials}"
    assert partials and all(offline_text.startswith(partial) for partial in partials), partials
    assert len(partials[0]) < len(offline_text)
    assert "Listening at" in status and connections == 1 and level > 0.01
    assert driver.find_element(By.ID, "start").text == "Start"  # stopped by itself after ?seconds=
    assert driver.find_element(By.ID, "partial").text == ""
