-- Jobs per state: waiting, delayed, active, completed, failed, cancelled.
return {redis.call('ZCARD', p .. 'queue'), redis.call('ZCARD', p .. 'delayed'), redis.call('ZCARD', p .. 'active'),
  redis.call('ZCARD', p .. 'completed'), redis.call('ZCARD', p .. 'failed'),
  redis.call('ZCARD', p .. 'cancelled')}
