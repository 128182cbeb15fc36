package policy

// IsGlob says whether a namespace or ServiceAccount pattern of the policy is a glob ('*' or '?') rather than an exact
// name, as the policy's own index tells them apart. Tools that read the cluster (doctor) use it: an exact name can be
// missing from the cluster, a glob stands for whatever exists.
func IsGlob(pattern string) bool { return isGlob(pattern) }
