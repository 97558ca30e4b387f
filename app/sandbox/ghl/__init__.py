"""The GHL (LeadConnector) Contacts API emulator."""
