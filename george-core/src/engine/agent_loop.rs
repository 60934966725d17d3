//! An agent step: the tool loop. The model is offered the agent's tools (only `read` and
//! `dry_run` ones while planning) and the outcome tools; the engine runs each tool call,
//! refuses what is not allowed, and ends the attempt when an outcome tool is called.

use tracing::Instrument as _;

use super::agent_outcome::json_len;
use super::attempt::{AttemptCtx, AttemptReport, Outcome, clip, clip_json, fail};
use super::prompt::{self, REPORT_SUCCESS};
use super::targets;
use crate::children::ORDER_JOB;
use crate::events::EventAction;
use crate::provider::{ChatRequest, Message, RequestContext};
use crate::template;
use crate::tool::{ToolDefinition, ToolInvocation};

impl AttemptCtx<'_> {
    pub(super) async fn run_agent(&self) -> AttemptReport {
        let Some(agent_name) = &self.spec.agent else {
            return self.report(fail("step has no agent", false));
        };
        let Some(agent) = self.agents.get(agent_name) else {
            return self.report(Outcome::Blocked(format!(
                "agent {agent_name} is not defined"
            )));
        };
        let a = &agent.spec;
        for needed in &self.spec.tools {
            if !a.tools.contains(needed) {
                return self.report(Outcome::Blocked(format!(
                    "agent {agent_name} lacks tool {needed:?}, which step {} needs (its tools: {})",
                    self.spec.id,
                    a.tools.join(", ")
                )));
            }
            if !self.tools.contains_key(needed) {
                return self.report(Outcome::Blocked(format!(
                    "no executor provides tool {needed:?}, which step {} needs",
                    self.spec.id
                )));
            }
        }
        let provider = match self.providers.get(&a.provider) {
            Some(p) => p.clone(),
            None => match self.factory.get(a) {
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    return self.report(Outcome::Blocked(format!(
                        "provider {:?} of agent {agent_name}: {e}",
                        a.provider
                    )));
                }
                None => {
                    return self.report(Outcome::Blocked(format!(
                        "provider {:?} of agent {agent_name} is not registered with the engine",
                        a.provider
                    )));
                }
            },
        };
        let source = self.spec.instructions.as_deref().unwrap_or("");
        // Text without template syntax is used as it is, not copied.
        let instructions: std::borrow::Cow<'_, str> = if template::has_syntax(source) {
            let ctx = prompt::render_context(self.desired, self.record);
            match template::render_limited(source, &ctx, self.render) {
                Ok(s) => s.into(),
                Err(e) => {
                    return self.report(fail(
                        format!(
                            "rendering the instructions of step `{}` (template `{}`): {e}",
                            self.spec.id, self.record.template
                        ),
                        false,
                    ));
                }
            }
        } else {
            source.into()
        };
        let needs_approval = crate::policy::plans(
            self.spec.approval.required,
            [
                Some(a.autonomy),
                self.desired.template.spec.autonomy,
                self.spec.autonomy,
            ],
            self.autonomy_ceiling,
        );
        let rejections = self
            .record
            .step(&self.spec.id)
            .map(|s| s.rejections.as_slice())
            .unwrap_or(&[]);
        let mut user = prompt::user_message(
            &instructions,
            self.desired,
            self.record,
            self.spec,
            self.attempt,
            rejections,
            needs_approval,
        );
        if needs_approval {
            // The write tools are not callable now, but a plan's actions may name them.
            let plannable: Vec<&ToolDefinition> = a
                .tools
                .iter()
                .filter_map(|t| self.tools.get(t).map(|r| &r.definition))
                .filter(|d| !d.effect.allowed_while_planning())
                .collect();
            prompt::append_plannable_tools(&mut user, &plannable);
        }
        // A planning attempt is offered `read` and `dry_run` tools only.
        // An agent that may order child jobs gets `order_job`, except while planning
        // (ordering is a change, and nothing changes before approval).
        let orders = !needs_approval && !a.may_order.is_empty();
        let tools = self.tool_lists.get(agent, needs_approval, || {
            a.tools
                .iter()
                .filter_map(|t| self.tools.get(t).map(|r| &r.definition))
                .filter(|d| !needs_approval || d.effect.allowed_while_planning())
                .chain(prompt::outcome_tools(needs_approval))
                .cloned()
                .chain(orders.then(|| prompt::order_job_tool(&a.may_order)))
                .collect()
        });
        // A job with a target also sees its target's journal (a `read` tool).
        let journal = !self.record.target.is_empty();
        let tools: std::sync::Arc<[ToolDefinition]> = if journal {
            tools
                .iter()
                .chain(std::iter::once(targets::ops_journal_tool()))
                .cloned()
                .collect()
        } else {
            tools
        };
        let actor = self.actors.agent(agent_name);
        let mut r = self.report(fail("", false));
        if let Some(why) = self.over_budget(&r.usage) {
            r.events.push(self.event(
                &crate::events::engine_actor(),
                EventAction::BudgetExceeded,
                why.clone(),
            ));
            r.outcome = fail(why, false);
            return r;
        }
        std::sync::Arc::make_mut(&mut r.transcript).push(Message::User { content: user });
        // Built for each turn (each request owns one): a prototype cloned per turn would
        // cost one copy more.
        let context = || RequestContext {
            job: self.record.name.clone(),
            step: self.spec.id.clone(),
            generation: self.record.generation,
            attempt: self.attempt,
            needs_approval,
            rejections: rejections.to_vec(),
        };
        let mut calls = 0usize;
        let iterations = self.limits.iterations(a.max_iterations);
        let mut transcript_bytes = r.transcript.iter().map(json_len).sum::<usize>();
        for _ in 0..iterations {
            let req = ChatRequest::new(
                a.model.clone(),
                a.system_prompt.clone(),
                r.transcript.clone(),
            )
            .with_context(context())
            .with_tools(tools.clone())
            .with_max_tokens(a.max_tokens)
            .with_temperature(a.temperature);
            let resp = match provider.complete(req).await {
                Ok(x) => x,
                Err(e) => {
                    r.outcome = fail(
                        format!("provider {}: {e}", provider.name()),
                        e.is_retryable(),
                    );
                    return r;
                }
            };
            r.usage.add(&resp.usage);
            r.events
                .push(self.event(&actor, EventAction::ModelResponded, {
                    let mut d = crate::events::detail!(
                        "{} tool call(s), {} in ({} cached) / {} out tokens, ${:.6}",
                        resp.message.tool_calls.len(),
                        resp.usage.input_tokens
                            + resp.usage.cache_read_tokens
                            + resp.usage.cache_write_tokens,
                        resp.usage.cache_read_tokens,
                        resp.usage.output_tokens,
                        resp.usage.cost_usd,
                    );
                    if let Some(c) = resp.message.content.as_deref() {
                        d.push_str(": ");
                        crate::text::push_clip(&mut d, c, 100);
                    }
                    d
                }));
            let msg = resp.message;
            if let Some(why) = self.over_turn_cap(msg.tool_calls.len()) {
                r.events.push(self.event(
                    &crate::events::engine_actor(),
                    EventAction::LimitExceeded,
                    why.clone(),
                ));
                std::sync::Arc::make_mut(&mut r.transcript).push(Message::Assistant(msg));
                r.outcome = fail(why, true);
                return r;
            }
            // The tool results follow the assistant's message in the transcript; they
            // are collected first so the message is moved there, not copied.
            let mut results = Vec::with_capacity(msg.tool_calls.len());
            let mut outcome: Option<Outcome> = None;
            // Children ordered with `wait` in this turn and not finished yet.
            let mut waits: Vec<String> = Vec::new();
            for call in &msg.tool_calls {
                calls += 1;
                let (content, is_error) = if call.name == ORDER_JOB {
                    match self
                        .order_child(a, agent_name, needs_approval, &call.arguments)
                        .await
                    {
                        Ok((content, wait)) => {
                            waits.extend(wait);
                            (content, false)
                        }
                        Err(why) => {
                            r.events.push(self.event(
                                &crate::events::engine_actor(),
                                EventAction::ToolRefused,
                                why.clone(),
                            ));
                            (why, true)
                        }
                    }
                } else if prompt::is_outcome_tool(&call.name) {
                    if outcome.is_some() {
                        (
                            "an outcome was already reported in this turn; this call is ignored"
                                .to_string(),
                            true,
                        )
                    } else {
                        let checked = match self.outcome_from(
                            &call.name,
                            &call.arguments,
                            agent,
                            needs_approval,
                        ) {
                            Ok(o) if call.name == REPORT_SUCCESS => {
                                // `resolves` is checked in full before anything is
                                // recorded: a refused name refuses the whole outcome.
                                let res = match super::resolves::parse_resolves(&call.arguments) {
                                    Ok(names) => {
                                        super::resolves::check_resolves(
                                            self.store,
                                            self.record,
                                            agent,
                                            &names,
                                        )
                                        .await
                                    }
                                    Err(why) => Err(why),
                                };
                                if let Err(why) = &res {
                                    r.events.push(self.event(
                                        &crate::events::engine_actor(),
                                        EventAction::ToolRefused,
                                        format!("report_success refused: {why}"),
                                    ));
                                }
                                res.map(|res| (o, res))
                            }
                            Ok(o) => Ok((o, Vec::new())),
                            Err(why) => Err(why),
                        };
                        match checked {
                            Ok((o, resolves)) => {
                                r.resolves = resolves;
                                r.events
                                    .push(self.event(&actor, EventAction::OutcomeReported, {
                                        let mut d = String::with_capacity(64);
                                        d.push_str(&call.name);
                                        d.push_str(": ");
                                        crate::text::push_clip_json(&mut d, &call.arguments, 200);
                                        d
                                    }));
                                outcome = Some(o);
                                ("recorded".to_string(), false)
                            }
                            Err(why) => (why, true),
                        }
                    }
                } else if journal && call.name == targets::OPS_JOURNAL {
                    // Offered by the engine, not an executor: the target is the job's.
                    let (content, is_error) =
                        targets::ops_journal(self.store, self.record, &call.arguments).await;
                    r.events.push(self.event(
                        &actor,
                        EventAction::ToolCalled,
                        format!(
                            "{}({}) → {}",
                            call.name,
                            clip_json(&call.arguments, 100),
                            clip(&content, 100)
                        ),
                    ));
                    (content, is_error)
                } else if !a.tools.contains(&call.name) {
                    let why = format!(
                        "tool {:?} is not allowed for agent {agent_name}; allowed: {}",
                        call.name,
                        a.tools.join(", ")
                    );
                    r.events.push(self.event(
                        &crate::events::engine_actor(),
                        EventAction::ToolRefused,
                        why.clone(),
                    ));
                    (why, true)
                } else if let Some(tool) = self.tools.get(&call.name) {
                    let inv =
                        ToolInvocation::new(&call.name, call.arguments.clone(), self.key(calls))
                            .with_context(self.tool_context());
                    let effect = tool.effect_of(&inv);
                    if needs_approval && !effect.allowed_while_planning() {
                        // Refused before any executor sees it: nothing changes before a
                        // human approves.
                        let why = format!(
                            "tool {:?} is a {effect} tool: this step needs a human's approval, so it may only read and dry-run; put the call in the plan's actions instead",
                            call.name
                        );
                        r.events.push(self.event(
                            &crate::events::engine_actor(),
                            EventAction::ToolRefused,
                            why.clone(),
                        ));
                        results.push(Message::Tool {
                            tool_call_id: call.id.clone(),
                            name: call.name.clone(),
                            content: why,
                            is_error: true,
                        });
                        continue;
                    }
                    let span = tracing::info_span!(
                        "tool.call",
                        tool = %call.name,
                        effect = effect.as_str()
                    );
                    match tool.executor.call(inv).instrument(span).await {
                        Ok(out) => {
                            r.events.push(self.event(
                                &actor,
                                EventAction::ToolCalled,
                                format!(
                                    "{}({}) → {}",
                                    call.name,
                                    clip_json(&call.arguments, 100),
                                    clip(&out.content, 100)
                                ),
                            ));
                            (out.content, out.is_error)
                        }
                        Err(e) => {
                            r.events.push(self.event(
                                &actor,
                                EventAction::ToolFailed,
                                format!("{}: {e}", call.name),
                            ));
                            (format!("tool error: {e}"), true)
                        }
                    }
                } else {
                    (format!("no executor provides tool {:?}", call.name), true)
                };
                let mut content = content;
                // Known secrets never reach the model, nor the stored transcript.
                self.secrets.redact_in_place(&mut content);
                results.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    name: call.name.clone(),
                    content,
                    is_error,
                });
            }
            let silent = msg.tool_calls.is_empty();
            // The request of this turn is gone (the provider took it), so the
            // transcript is not shared any more and is appended to in place.
            let transcript = std::sync::Arc::make_mut(&mut r.transcript);
            let start = transcript.len();
            transcript.push(Message::Assistant(msg));
            if silent {
                transcript.push(Message::User {
                    content: "Report the outcome of this step by calling one of the outcome tools; plain text is not read as an outcome.".into(),
                });
            }
            transcript.extend(results);
            transcript_bytes += transcript[start..].iter().map(json_len).sum::<usize>();
            if transcript_bytes > self.limits.max_transcript_bytes && outcome.is_none() {
                let why = format!(
                    "the transcript reached {transcript_bytes} bytes, over the cap of {} \
                     (AgentLimits::max_transcript_bytes)",
                    self.limits.max_transcript_bytes
                );
                r.events.push(self.event(
                    &crate::events::engine_actor(),
                    EventAction::LimitExceeded,
                    why.clone(),
                ));
                r.outcome = fail(why, false);
                return r;
            }
            // A turn that ordered children to wait for ends the attempt waiting, unless
            // it also reported a failure or a block.
            if !waits.is_empty() && matches!(outcome, None | Some(Outcome::Succeeded(_))) {
                // Not a success: nothing is resolved by it either.
                r.resolves.clear();
                outcome = Some(Outcome::WaitForChildren(waits));
            }
            if let Some(o) = outcome {
                r.outcome = o;
                return r;
            }
            if let Some(why) = self.over_budget(&r.usage) {
                r.events.push(self.event(
                    &crate::events::engine_actor(),
                    EventAction::BudgetExceeded,
                    why.clone(),
                ));
                r.outcome = fail(why, false);
                return r;
            }
            if let Some(budget) = a.token_budget
                && r.usage.total() > budget
            {
                r.outcome = fail(
                    format!(
                        "token budget of {budget} exceeded ({} used)",
                        r.usage.total()
                    ),
                    false,
                );
                return r;
            }
        }
        r.outcome = fail(
            format!(
                "iteration limit ({iterations}) reached without an outcome \
                 (the spec's max_iterations, capped by AgentLimits::max_iterations)"
            ),
            false,
        );
        r
    }
}
