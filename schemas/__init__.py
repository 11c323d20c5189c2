"""The data contract: typed records (records), the Arrow schemas derived from them (arrow), and the
typed, validated configuration sections every stage is built from (config)."""
