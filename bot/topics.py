"""The topic contract: intent names `/model/parse` returns (or `nlu_fallback`)."""
from __future__ import annotations

FAQ_TOPICS = (
    "login_failure",
    "forgot_password",
    "payment_failure",
    "refund",
    "account_frozen",
    "account_security",
    "report_fraud",
    "change_account_info",
    "service_unreachable",
    "complaint",
    "feedback",
    "app_problem",
    "service_status",
    "withdrawal",
    "top_up",
    "transfer",
    "bank_card",
    "identity_verification",
    "limits",
    "fees",
    "close_account",
    "transaction_records",
    "receive_money",
)

CONVERSATION_INTENTS = (
    "contact_human",
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "bot_challenge",
    "out_of_scope",
)

ALL_INTENTS = FAQ_TOPICS + CONVERSATION_INTENTS

FALLBACK_INTENT = "nlu_fallback"

MENU_TOPICS = ("payment_failure", "refund", "withdrawal", "transfer", "login_failure", "account_security")
"""What the assistant offers as buttons when a message is off-topic."""

MUST_OFFER_HUMAN = ("account_security", "report_fraud", "complaint")
"""Topics where money or safety is at risk: a human is always offered with the answer."""
