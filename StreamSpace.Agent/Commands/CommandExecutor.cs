using System.Collections.Concurrent;
using System.Text.Json;
using StreamSpace.Agent.Platforms;
using StreamSpace.Agent.Recording;
using StreamSpace.Contracts;

namespace StreamSpace.Agent.Commands;

/// <summary>
/// Carries out commands exactly once per command id: delivery is at least once, so a repeated id returns
/// the first execution's result (or waits for it) instead of acting again.
/// </summary>
public sealed class CommandExecutor(ISessionPlatform platform, OrphanReaper orphans, SessionRecordings recordings, ILogger<CommandExecutor> logger)
{
    private const int Remembered = 2048;
    private readonly ConcurrentDictionary<Guid, Lazy<Task<CommandResultMessage>>> ledger = new();
    private readonly ConcurrentQueue<Guid> order = new();

    /// <summary>How many commands were actually carried out (not answered from the ledger).</summary>
    public int Executed => executed;

    private int executed;

    public Task<CommandResultMessage> ExecuteAsync(CommandMessage command)
    {
        var entry = ledger.GetOrAdd(command.CommandId, _ => new Lazy<Task<CommandResultMessage>>(() => RunAsync(command)));
        if (entry.IsValueCreated)
        {
            logger.LogInformation("Command {CommandId} ({CommandType}) arrived again; answering with its first result", command.CommandId, command.CommandType);
        }
        else
        {
            order.Enqueue(command.CommandId);
            Forget();
        }

        return entry.Value;
    }

    private async Task<CommandResultMessage> RunAsync(CommandMessage command)
    {
        Interlocked.Increment(ref executed);
        SessionCommandPayload? payload = null;
        try
        {
            payload = command.Payload.Deserialize<SessionCommandPayload>(AgentProtocol.Json)
                ?? throw new JsonException("the payload is empty");
            logger.LogInformation("Received {CommandType} command for {SessionId}", command.CommandType, payload.SessionId);
            orphans.Claim(payload.SessionId);

            // The end record goes in before the session's VNC server goes away, at the time it was asked to stop. A
            // session to record is known as one before it starts: a platform may report it running before its start returns.
            if (command.CommandType is CommandTypes.StopSession or CommandTypes.HibernateSession)
            {
                await recordings.SessionEndedAsync(payload.SessionId, command.CommandType == CommandTypes.StopSession ? SessionState.Stopped : SessionState.Hibernated);
            }
            else if (command.CommandType is CommandTypes.StartSession or CommandTypes.WakeSession)
            {
                recordings.SessionStarting(payload);
            }

            // Commands run to completion even if the connection drops: the control plane asks again and gets this result.
            var session = command.CommandType switch
            {
                CommandTypes.StartSession => await platform.StartAsync(payload, CancellationToken.None),
                CommandTypes.StopSession => await platform.StopAsync(payload.SessionId, CancellationToken.None),
                CommandTypes.HibernateSession => await platform.HibernateAsync(payload, CancellationToken.None),
                CommandTypes.WakeSession => await platform.WakeAsync(payload, CancellationToken.None),
                _ => throw new NotSupportedException($"unknown command type '{command.CommandType}'"),
            };
            logger.LogInformation("Session {SessionId}: {CommandType} done, state {State}", payload.SessionId, command.CommandType, session.State.ToName());
            if (command.CommandType is CommandTypes.StartSession or CommandTypes.WakeSession)
            {
                await recordings.SessionStartedAsync(payload.SessionId, session.State);
            }

            return new CommandResultMessage(command.CommandId, Success: true, Session: session);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Failed to carry out {CommandType} for {SessionId}: {Reason}", command.CommandType, payload?.SessionId ?? command.SessionId, e.Message);
            var sessionId = payload?.SessionId ?? command.SessionId;
            var failed = sessionId is null ? null : new ReportedSession(sessionId, SessionState.Failed, $"{command.CommandType} failed: {e.Message}");
            return new CommandResultMessage(command.CommandId, Success: false, Error: e.Message, Session: failed);
        }
    }

    private void Forget()
    {
        while (order.Count > Remembered && order.TryDequeue(out var oldest))
        {
            ledger.TryRemove(oldest, out _);
        }
    }
}
