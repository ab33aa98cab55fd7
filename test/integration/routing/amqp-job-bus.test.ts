import { afterAll, beforeAll } from 'vitest';
import { type AmqpTestContext, useAmqp } from '../../support/context.js';
import { amqpBackend } from '../../support/amqp-bus.js';
import { describeJobBusContract } from '../../contract/job-bus.contract.js';

let amqp: AmqpTestContext;
beforeAll(async () => {
  amqp = await useAmqp();
});
afterAll(() => amqp.close());

describeJobBusContract('RabbitMQ', () => amqpBackend({ url: amqp.url }));
