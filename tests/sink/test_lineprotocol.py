import pytest

from gateway.errors import InvalidInput
from gateway.sink.lineprotocol import encode_point


def test_encodes_sorted_tags_typed_fields_and_timestamp():
    line = encode_point("events", {"type": "reading.v1", "subject": "t-1"},
                        {"sequence": 3, "value": 1.5, "ok": True, "id": "x"}, 42)
    assert line == 'events,subject=t-1,type=reading.v1 sequence=3i,value=1.5,ok=true,id="x" 42'


def test_escapes_metacharacters_so_values_cannot_add_tags_fields_or_points():
    line = encode_point("m,x y", {"t=a,b": "v 1,c=d"}, {"f k": 'say "hi" \\ ,x=1 y=2'}, 1)
    assert line == r'm\,x\ y,t\=a\,b=v\ 1\,c\=d f\ k="say \"hi\" \\ ,x=1 y=2" 1'


def test_empty_tag_values_are_omitted():
    assert encode_point("m", {"a": "", "b": "1"}, {"f": 1}, 1) == "m,b=1 f=1i 1"


@pytest.mark.parametrize("tags", [{"a": "line\nbreak"}, {"a": "back\\slash"}, {"": "x"}])
def test_unescapable_names_are_refused(tags):
    with pytest.raises(InvalidInput):
        encode_point("m", tags, {"f": 1}, 1)


def test_non_finite_floats_and_empty_fields_are_refused():
    with pytest.raises(InvalidInput, match="not finite"):
        encode_point("m", {}, {"f": float("nan")}, 1)
    with pytest.raises(InvalidInput, match="no fields"):
        encode_point("m", {}, {}, 1)
