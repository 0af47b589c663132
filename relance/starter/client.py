"""The Temporal client every entry point uses (pydantic payloads)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from relance.core.codec import data_converter, parse_keys
from relance.core.settings import Settings
from relance.workflows.search_attributes import ALL


def temporal_data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, sealed when ``RELANCE_PAYLOAD_KEYS`` is set (see relance.core.codec)."""
    if not settings.payload_keys:
        return pydantic_data_converter
    return data_converter(pydantic_data_converter, parse_keys(settings.payload_keys))


async def connect_temporal(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=temporal_data_converter(settings),
    )


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Declare relance's search attributes on a server that lacks them (test servers, fresh clusters)."""
    request = AddSearchAttributesRequest(
        namespace=namespace,
        search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL},
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def quiet_runtime() -> Runtime:
    """A Temporal runtime whose core logs only errors (they go to stdout otherwise)."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
