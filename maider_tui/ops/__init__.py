"""UI-free workflows: provisioning, healing, the watchdog, model switching, destroying.

Nothing here imports Textual; long work reports progress as typed events. `heal`'s diagnose and
remedy are pure and tested without any server.
"""
