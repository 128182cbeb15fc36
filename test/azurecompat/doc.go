// Package azurecompat compares this webhook's full Azure injection with the Azure Workload Identity webhook's own
// mutator on generated pods.
package azurecompat
