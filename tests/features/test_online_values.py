"""The online reader's shortcut for plain values gives what Feast's conversion gives."""

import pytest
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import feast_value_type_to_python_type
from feast.value_type import ValueType

from recsys.features.online_reader import python_value

VALUES = [
    ValueProto(int32_val=7), ValueProto(int64_val=2**40), ValueProto(double_val=0.25),
    ValueProto(float_val=1.5), ValueProto(string_val="i12"), ValueProto(bool_val=True),
    ValueProto(bytes_val=b"\x00x"), ValueProto(),
    ValueProto(int64_list_val={"val": [3, 1, 2]}), ValueProto(double_list_val={"val": [0.5]}),
    ValueProto(float_list_val={"val": [0.1, 0.2]}),
    ValueProto(string_list_val={"val": ["i1", "i2"]}), ValueProto(bool_list_val={"val": []}),
    ValueProto(unix_timestamp_val=1_700_000_000), ValueProto(int64_set_val={"val": [1, 1, 2]}),
]


@pytest.mark.parametrize("proto", VALUES, ids=lambda p: p.WhichOneof("val") or "null")
@pytest.mark.parametrize("kind", [None, ValueType.STRING, ValueType.UUID])
def test_plain_values_convert_as_feast_converts_them(proto: ValueProto, kind: ValueType) -> None:
    if kind == ValueType.UUID and proto.WhichOneof("val") == "string_val":
        proto = ValueProto(string_val="12345678-1234-5678-1234-567812345678")
    got, expected = python_value(proto, kind), feast_value_type_to_python_type(proto, kind)
    assert got == expected and type(got) is type(expected)
