"""The Rankr API emulator."""
