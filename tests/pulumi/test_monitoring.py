"""What the program gives the cloud's Prometheus to scrape, per stack: the Kafka brokers' JMX
exporter with the shared rules file, and Strimzi's Kafka Exporter."""

from __future__ import annotations

import re

import pytest
import yaml

from infra.facts.exporters import exporters
from infra.pulumi.data_stacks import KAFKA_METRICS_FILE
from tests.pulumi.stacks import STACKS, stack_run


@pytest.mark.parametrize("env", STACKS)
def test_the_brokers_export_the_shared_jmx_names_and_the_kafka_exporter_runs(env: str) -> None:
    run = stack_run(env)
    assert run.error is None, run.error
    kafka = run.one("kubernetes:kafka.strimzi.io/v1beta2:Kafka")
    spec = kafka.inputs["spec"]
    ref = spec["kafka"]["metricsConfig"]["valueFrom"]["configMapKeyRef"]
    assert spec["kafka"]["metricsConfig"]["type"] == "jmxPrometheusExporter"
    (config_map,) = [
        c for c in run.of_type("kubernetes:core/v1:ConfigMap") if c.inputs["metadata"]["name"] == ref["name"]
    ]
    assert config_map.inputs["metadata"]["namespace"] == kafka.inputs["metadata"]["namespace"]
    assert config_map.inputs["data"][ref["key"]] == KAFKA_METRICS_FILE.read_text()
    assert config_map.name in kafka.options.depends_on
    assert set(spec["kafkaExporter"]) == {"topicRegex", "groupRegex"}
    # The names the exporters' list credits to the brokers are exactly what the file's rules
    # produce (each rule's first group's alternatives in its name, lowercased as configured).
    assert set(exporters().exporters["strimzi-kafka"].metrics) == jmx_names()


def jmx_names() -> set[str]:
    config = yaml.safe_load(KAFKA_METRICS_FILE.read_text())
    assert config["lowercaseOutputName"] is True
    names = set()
    for rule in config["rules"]:
        (alternatives,) = re.findall(r"name=\(([^)]*)\)", rule["pattern"])
        names |= {rule["name"].replace("$1", alternative).lower() for alternative in alternatives.split("|")}
    return names
