"""The listener side of the gateway: connections, their deadlines and caps, load shedding."""
