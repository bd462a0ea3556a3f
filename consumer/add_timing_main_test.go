package consumer

// nextBatch is the batch the poll loop starts after prev.
func nextBatch(prev *Batch) *Batch { return newBatchAfter(prev) }
