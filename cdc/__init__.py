"""Change data capture: Debezium-format change events from the monolith to Kafka and
from Kafka into the extracted services' databases."""
