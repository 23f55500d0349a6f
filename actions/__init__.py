"""rasa-sdk actions of 钱包小助手. Thin: the logic lives in `bot/`."""
