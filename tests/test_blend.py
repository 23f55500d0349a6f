from bot.nlu.blend import blend_rankings


def test_blend_is_a_weighted_average_best_first():
    lr = [{"name": "refund", "confidence": 0.8}, {"name": "payment_failure", "confidence": 0.2}]
    diet = [{"name": "payment_failure", "confidence": 0.9}, {"name": "refund", "confidence": 0.1}]
    blended = blend_rankings(lr, diet, 0.7)
    assert [r["name"] for r in blended] == ["refund", "payment_failure"]
    assert abs(blended[0]["confidence"] - (0.7 * 0.8 + 0.3 * 0.1)) < 1e-9
    assert abs(sum(r["confidence"] for r in blended) - 1.0) < 1e-9


def test_blend_with_missing_names():
    blended = blend_rankings([{"name": "a", "confidence": 1.0}], [{"name": "b", "confidence": 1.0}], 0.5)
    assert {r["name"]: r["confidence"] for r in blended} == {"a": 0.5, "b": 0.5}
