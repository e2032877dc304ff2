"""The embedded local stack: moto's server for AWS and the Wistia emulator, on loopback."""
