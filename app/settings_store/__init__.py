"""The sync configuration kept in the database, versioned: who changed what and when, one step back.

Each save is a new row of ``settings_versions`` holding the whole configuration (the document
``CONFIG_FILE`` would hold, validated by the same ``app.automation.config.parse``), so the history is
complete and a roll-back is a save of the version before. ``CONFIG_FILE``, when set, wins: the
stored versions are then only shown, never applied.
"""
