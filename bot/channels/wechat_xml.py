"""Hardened parsing of WeChat's XML, done before anything reaches wechatpy.

wechatpy parses with xmltodict (expat), which expands internal entities: a "billion laughs"
body would be expanded in memory, and a DOCTYPE has no business in a WeChat message anyway.
defusedxml with `forbid_dtd` refuses every DOCTYPE (so every entity and external reference)
and malformed XML, so only well-formed, DTD-free `<xml>…</xml>` documents get through.
"""
from __future__ import annotations

from typing import Dict, Union
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_XML_BYTES = 64 * 1024
"""WeChat messages are a few hundred bytes; anything near this is not from WeChat."""


class XmlError(ValueError):
    """The body is not a plain WeChat XML document (answer 400, process nothing)."""


def parse_wechat_xml(data: Union[bytes, str]) -> Dict[str, str]:
    """Top-level `<xml>` children as {tag: text}; XmlError for anything else."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not raw or len(raw) > MAX_XML_BYTES:
        raise XmlError("empty or oversized body")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise XmlError(f"rejected XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise XmlError("root element must be <xml>")
    return {child.tag: child.text or "" for child in root}


def xml_text(data: Union[bytes, str]) -> str:
    """The document as text for wechatpy, once `parse_wechat_xml` accepted it."""
    try:
        return data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise XmlError("body is not UTF-8") from None
