"""How the Rasa server runs our bot fast: in-process actions, a parse cache, a leaner turn."""
