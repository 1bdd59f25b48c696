"""The installer console: the door's live view, health, attempts and configuration in a browser.

Off by default (``[console] enabled``); served by the kiosk service on its own address
(:mod:`edge.kiosk.console.app`). docs/kiosk-console.md says what it shows, who may see it, and why
it is built the way it is.
"""
