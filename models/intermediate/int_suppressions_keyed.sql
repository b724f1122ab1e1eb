{#-
    Suppression entries ready to match: by profile_id, and by household_key (the normalized address),
    so that "moved away" or "deceased" at an address suppresses it however the CRM spells it.
    One row per entry: address_key is the key of the entry's address as captured (NULL without one), so
    two entries of a list by two addresses stay two rows even before their household keys are known.
    is_address_pending: the entry has an address (int_addresses_collected collects it) with no
    validation result yet, so no household key until `directmail addresses validate` or a run.
-#}
with

entries as (

    select * from {{ ref('stg_suppression__entries') }}

),

validated as (

    select * from {{ ref('stg_direct_mail__address_validations') }}

),

addressed as (

    select
        list_name,
        profile_id,
        case
            when address_line_1 is not null
                then {{ address_key(
                    'address_line_1', 'address_line_2', 'postal_code', 'city', 'region', 'country_code'
                ) }}
        end as address_key,
        added_on

    from entries

),

keyed as (

    select
        addressed.list_name,
        addressed.profile_id,
        addressed.address_key,
        validated.household_key,
        (
            addressed.address_key is not null
            and validated.address_key is null
        ) as is_address_pending,
        addressed.added_on

    from addressed
    left join validated
        on addressed.address_key = validated.address_key

)

select * from keyed
