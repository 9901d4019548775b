"""Tests that open the service's pages in headless Chromium, as a person would."""
