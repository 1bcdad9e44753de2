"""The Textual user interface: screens, dialogs and widgets. Renders state; no blocking I/O here."""
