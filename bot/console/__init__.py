"""The agent console: a small web app where support agents take over conversations."""
