package pods

// MaxContainerWarnings is maxContainerWarnings for the tests that go through the front (package pods_test).
const MaxContainerWarnings = maxContainerWarnings
