"""钱包小助手: our own logic for the Rasa wallet-support assistant (plain, testable functions)."""
